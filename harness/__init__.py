"""hotline-drill: chaos drills for SIP customer-service hotlines."""
__version__ = "0.1.0"
