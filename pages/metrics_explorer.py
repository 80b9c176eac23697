import streamlit as st

st.title("metrics_explorer")
st.info("This page is being built.")
