"""Who labels: teacher LLMs, prompt styles, the ensemble and its aggregation, human review."""
