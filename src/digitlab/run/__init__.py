"""A trained model as files, scored and used: its card, saving and loading, the predictor, one training run.

card (what model.json holds, validated) -> serialization (the run folder's files) -> inference and
shifts (outputs, TTA) -> predictor (labels, probabilities, top k, evaluation, top losses) ->
train_run (a job that trains, evaluates and saves a run folder).
"""
