import streamlit as st

st.title("label_quality")
st.info("This page is being built.")
