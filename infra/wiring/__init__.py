"""The composition root: one module per area builds it from the settings, and is the
only place that chooses an adapter; ``process`` assembles a process from the areas."""
