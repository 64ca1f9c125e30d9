-- Medical settlements delivered up to and including the quarter whose 结算日期 falls in
-- the 12 months ending Q.end; each 结算流水号 once, from its latest delivery.
-- Only settlements linked to a roster member this quarter (linked.matches): the rules
-- read settlements through the links, and most of a province's tens of millions are
-- other people's. The copy is chosen on the key columns alone and the rows fetched after,
-- rather than ranking whole rows.
with

linked_settlements as (
    select distinct record_key as settlement_id
    from linked.matches
    where quarter = $quarter and source = 'medical'
),

delivered as (
    select rowid as row_ref, settlement_id, quarter, source_file, source_row
    from staging.medical
    semi join linked_settlements using (settlement_id)
    where quarter <= $quarter
      and settlement_date > $lookback_start
      and settlement_date <= $q_end
),

latest_copy as (
    select first(row_ref order by quarter desc, source_file, source_row) as row_ref
    from delivered
    group by settlement_id
),

final as (
    select m.*
    from staging.medical as m
    semi join latest_copy as c on m.rowid = c.row_ref
)

select * from final
