-- One row per word read in the pixels: box, PHI or not, reason (no text).
{{ lake_table('pixel_phi_findings', {
    'file': 'varchar',
    'frames': 'varchar',
    'x1': 'integer',
    'y1': 'integer',
    'x2': 'integer',
    'y2': 'integer',
    'is_phi': 'boolean',
    'reason': 'varchar',
    'text_score': 'double',
}) }}
