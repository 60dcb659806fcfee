"""An example plug-in for hotline-drill: the `flag.maintenance` fault family."""
