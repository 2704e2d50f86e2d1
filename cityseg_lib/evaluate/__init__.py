"""Using trained models: inference modes, evaluation of runs and of prediction folders, export."""
