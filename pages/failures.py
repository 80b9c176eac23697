import streamlit as st

st.title("failures")
st.info("This page is being built.")
