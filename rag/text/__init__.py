"""Text utilities shared by the pipeline: language, sentence boundaries, token counts."""
