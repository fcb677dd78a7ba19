"""Face geometry shared by the data preparation, the teacher and the inference pipeline."""
