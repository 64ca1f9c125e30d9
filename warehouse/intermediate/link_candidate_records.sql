-- The extract identities the probabilistic linker looks at: not judged by the deterministic
-- pass (neither linked, nor an identity conflict: another person's name on a member's ID is
-- for the caseworker to resolve, rule Q02, not for Splink to guess), carrying an 18-digit
-- ID or the 15 digits Excel keeps, and either with an ID that cannot be trusted as it
-- stands, or sharing an ID key or name and birth date with a roster member whose own ID
-- is damaged or missing. (A record with a valid ID and no such neighbour can only be
-- about someone off the roster.) Records with no ID, or only the six digits Excel leaves,
-- are not linked: a name and a county do not identify a person. Names are compared here by the pinyin of their first
-- character (`__surname_keys`, built in Python), so that 劉凱 and 刘凯 meet; Splink then
-- compares the whole names.
-- The unions carry only `unique_id`: a province's extract has millions of identities, and
-- deduplicating whole rows would hold them all.
with

surnames as (
    select first_char, surname_py from __surname_keys
),

records as (
    select r.unique_id, r.name, r.birth_date, r.id_valid,
           {{ record_id_key_columns }}
    from link_identities as r
    anti join link_exact_id as e on e.identity_key = r.unique_id
    where r.side = 'record'
      and (r.id18 is not null or r.partial15 is not null)
),

damaged_members as (
    select m.*, s.surname_py
    from link_identities as m
    left join surnames as s on s.first_char = left(m.name, 1)
    where m.side = 'member' and not m.id_valid
),

untrusted as (
    select unique_id from records where not id_valid
),

near_damaged_member as (
    -- one semi-join per ID key (pipelines/link/blocking.py, ID_KEYS), united
    {{ near_damaged_member_by_id_key }}
    union
    select unique_id
    from (select r.unique_id, r.birth_date, s.surname_py
          from records as r join surnames as s on s.first_char = left(r.name, 1)) as r
    semi join damaged_members as m on r.surname_py = m.surname_py and r.birth_date = m.birth_date
),

chosen as (
    select unique_id from untrusted
    union
    select unique_id from near_damaged_member
),

final as (
    select r.* from link_identities as r semi join chosen using (unique_id)
    where r.side = 'record'
)

select * from final
