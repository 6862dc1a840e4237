"""Static checks of the deployment artifacts: images, compose, Kubernetes manifests."""
