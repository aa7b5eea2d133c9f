//! Warnings and infos attached to query results.
