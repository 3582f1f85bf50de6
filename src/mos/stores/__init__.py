"""Storage behind two small protocols: MetadataStore and BlobStore."""
