"""Layer 5: the platform REST API (FastAPI), one router per capability, behind one auth dependency."""
