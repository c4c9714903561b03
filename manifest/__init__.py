"""The Teams app package: manifest template, icons and the builder (`python -m manifest.build`)."""
