"""comment-moderation: self-hosted comment moderation and spam filtering for news sites."""


def create_app(config=None):
    """Build the Flask application (see `moderation.app.create_app`)."""
    from moderation.app import create_app as factory

    return factory(config)
