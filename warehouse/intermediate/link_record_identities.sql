-- The distinct identities the quarter's extract records are written with (see
-- int_extract_identities.identity_key): what the linker links. A record then takes the
-- links of its identity.
with

records as (
    select identity_key, name, id_number, id_number_valid, id_number_partial, id_number_raw, id_number_flag
    from int_extract_identities
),

final as (
    select
        identity_key,
        any_value(name) as name,
        any_value(id_number) as id_number,
        any_value(id_number_valid) as id_number_valid,
        any_value(id_number_partial) as id_number_partial,
        any_value(id_number_raw) as id_number_raw,
        any_value(id_number_flag) as id_number_flag,
        count(*) as records
    from records
    group by identity_key
)

select * from final
