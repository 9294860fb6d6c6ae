"""costwarden: predictive budget alerts and cost control for Kubernetes fleets on Palette."""

__version__ = "0.1.0"
