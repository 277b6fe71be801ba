"""The app's screens: setup (the run form), live (a search as it runs), runs (+ replay), genotype editor, help."""
