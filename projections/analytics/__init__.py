"""Analytics read models: sales, the checkout funnel, payment declines and stock,
projected from the logs like every other view (``projections.analytics.views``)."""
