import streamlit as st

st.title("leaderboard")
st.info("This page is being built.")
