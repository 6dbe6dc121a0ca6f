-- Stage state moved to its own file (`<store>.state.db`, created by the store itself), so a
-- large state save never holds up the writes of clicks, conversions and lines.
DROP TABLE IF EXISTS stage_state;
