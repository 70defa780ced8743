-- One row per element of each tag-de-identified file, its (de-identified) value included.
{{ lake_table('deidentified_metadata', {
    'file': 'varchar',
    'path': 'varchar',
    'tag': 'varchar',
    'keyword': 'varchar',
    'vr': 'varchar',
    'vm': 'integer',
    'value': 'varchar',
    'length': 'bigint',
    'private_creator': 'varchar',
    'depth': 'integer',
}) }}
