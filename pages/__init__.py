"""The app's pages (one script per page) and the small typed helper modules they share.

A regular package, not a namespace package: concurrent first imports from Streamlit's script
threads must all find the same ``pages`` module (see README, "Serving a class").
"""
