import streamlit as st

st.title("loss_inspector")
st.info("This page is being built.")
