"""Text -> Spec: safe YAML with positions (`source`), value types (`fields`), layer kinds (`kinds`), the
`train:` section (`trainconf`), loading with `extends` and `defaults` (`load`), the one way to edit a spec
(`edit`), and the JSON Schema (`schema`)."""
