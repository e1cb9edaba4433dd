"""Evaluation protocols (plain functions, CLI on top); embeddings are computed once and cached."""
