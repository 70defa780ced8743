-- One row per element of each de-identified file: the action taken and the rule that chose it.
{{ lake_table('deid_audit', {
    'file': 'varchar',
    'path': 'varchar',
    'tag': 'varchar',
    'keyword': 'varchar',
    'action': 'varchar',
    'rule': 'varchar',
}, files='work/*/audit.parquet') }}
