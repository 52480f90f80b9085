"""A module a layer carries: the function that imports it finds it only through the layer."""

GREETING = "hello from the layer"
