"""Jobs: where training, a model's files and prediction meet.

train_run (one training run: train, evaluate, calibrate abstention, save the run folder) ->
fine_tune (a saved run trained further on your corrections); run_folder (a run's folder written
atomically, kept locked, resumed from its checkpoint).
"""
