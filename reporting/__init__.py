"""GreenOps reporting: energy, cost and carbon of ML compute, attributed to teams, models and phases."""

__version__ = "0.1.0"
