"""Placeholder: the OpenAPI document is being written."""
from flask import Blueprint

bp = Blueprint("openapi", __name__)
