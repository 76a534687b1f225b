"""The campaign: config, budget, the round runner, routing of items to review, progress and reports."""
