"""Evaluation: BSS Eval of clicked stems against ground truth, with oracle masks beside."""
