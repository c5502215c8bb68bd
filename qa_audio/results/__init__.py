"""Stored results and what is made of them: the store, review, export, privacy, rendering, redaction."""
