"""The verbs: prep, train, sample (installed as ``zoo.pipelines``). Generic over plugins."""
