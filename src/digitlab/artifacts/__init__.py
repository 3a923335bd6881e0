"""What a trained model leaves behind: its card (the JSON beside the weights), saving and loading,
the preprocessing that turns digits into its inputs, and the metrics the card records."""
