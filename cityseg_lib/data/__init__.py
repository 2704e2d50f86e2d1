"""Data stage: Cityscapes labels and layout, image reading, the sample cache, the dataset and its
transforms, dataset checks and statistics, where the data comes from, and the demo generator."""
