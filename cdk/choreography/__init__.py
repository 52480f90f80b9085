"""The order choreography's CDK code: the stack lives in a module of its own."""

from choreography.order_choreography_stack import OrderChoreographyStack

__all__ = ["OrderChoreographyStack"]
