"""promtool/amtool checks of the rendered monitoring configuration."""
