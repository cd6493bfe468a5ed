"""The second ranking stage: features of candidate passages, a learned ranker, answerability."""
