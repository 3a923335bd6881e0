"""A trained model as files, scored and used: its card, saving and loading, the predictor.

card (what model.json holds, validated) -> serialization (the run folder's files) -> inference and
shifts (outputs, TTA) -> predictor (labels, probabilities, top k, evaluation, top losses) ->
abstain (when not to answer), numbers (a picture read as a number). Training a run is a job
(`digitlab.jobs`).
"""
