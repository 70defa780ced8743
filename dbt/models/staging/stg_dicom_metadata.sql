-- One row per element of each incoming DICOM file. The values stay in the private table: none
-- of the models needs them.
{{ lake_table('dicom_metadata', {
    'file': 'varchar',
    'path': 'varchar',
    'tag': 'varchar',
    'keyword': 'varchar',
    'vr': 'varchar',
    'vm': 'integer',
    'length': 'bigint',
    'private_creator': 'varchar',
    'depth': 'integer',
}) }}
