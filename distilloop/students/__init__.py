"""What is distilled: students from a TF-IDF linear model to step-by-step seq2seq/causal LMs."""
