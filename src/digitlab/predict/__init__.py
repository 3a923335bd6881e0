"""A saved model at work: the predictor, abstention ("not a digit", "not sure") and whole numbers."""
