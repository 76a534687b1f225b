"""What a campaign shows its users: the learning-curve table and summary (``run``, ``status``, ``report``) and
the self-contained HTML report. Rendering only: every figure comes from the store's typed read models."""
