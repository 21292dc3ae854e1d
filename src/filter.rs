//! `filters.where`: a SQL boolean expression over a granule's output
//! columns, planned once by DataFusion's expression planner (feature
//! `query`) and evaluated on every beam's rows before they are written.
//! Catalog variables the expression names that the manifest does not
//! request (`msw_flag`, `night_flag`, ...) are read for the filter and not
//! written.

use arrow::datatypes::{Schema, SchemaRef};

use crate::granule::columns::OutputVariable;
use crate::granule::variables::{CATALOG, Level, Variable};
use crate::granule::{Resolution, RowFilter};

/// Compiles `sql` against the output columns `output`; the error is one
/// line naming what is wrong (an unknown column with a 'did you mean', a
/// syntax error, an expression that is not boolean).
pub fn compile(sql: &str, output: &SchemaRef, resolution: Resolution) -> Result<RowFilter, String> {
    if sql.trim().is_empty() {
        return Err("is empty; give a SQL boolean expression such as \"h_canopy < 80\"".into());
    }
    let candidates = filter_only_variables(output);
    engine::compile(sql, output, &candidates, resolution)
}

/// Catalog variables a filter may name without requesting them: those of
/// the 100 m segments whose name is not an output column and belongs to
/// no other catalog variable (two variables with one name must be
/// requested, with a `name:`, to be filtered on).
fn filter_only_variables(output: &Schema) -> Vec<OutputVariable> {
    let segment = |variable: &&Variable| variable.level == Level::Segment;
    let shared = |name: &str| {
        CATALOG
            .iter()
            .filter(segment)
            .filter(|v| v.name() == name)
            .count()
            > 1
    };
    CATALOG
        .iter()
        .filter(segment)
        .filter(|variable| output.field_with_name(variable.name()).is_err())
        .filter(|variable| !shared(variable.name()))
        .map(|variable| OutputVariable {
            spec: variable,
            name: variable.name().to_string(),
        })
        .collect()
}

#[cfg(feature = "query")]
mod engine {
    use std::collections::HashSet;
    use std::sync::Arc;

    use arrow::array::{Array, BooleanArray, RecordBatch};
    use arrow::datatypes::{DataType, SchemaRef};
    use datafusion::common::DFSchema;
    use datafusion::physical_expr::PhysicalExpr;
    use datafusion::prelude::SessionContext;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

    use crate::granule::columns::{OutputVariable, arrow_type};
    use crate::granule::{Resolution, RowFilter, RowPredicate};
    use arrow::datatypes::{Field, Schema};

    /// The schema a filter's batch has: the output columns, then `hidden`.
    /// At `resolution: 20m` a variable with a value per sub-segment is the
    /// sub-segment's scalar, as in the output.
    fn with_hidden(
        output: &Schema,
        hidden: &[OutputVariable],
        resolution: Resolution,
    ) -> SchemaRef {
        let mut fields: Vec<Field> = output.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.extend(hidden.iter().map(|variable| {
            let data_type = if resolution == Resolution::Subsegment && variable.is_per_20m() {
                arrow_type(variable.spec.dtype)
            } else {
                variable.data_type()
            };
            Field::new(&variable.name, data_type, true)
        }));
        Arc::new(Schema::new_with_metadata(fields, output.metadata().clone()))
    }

    /// The closest of `names` to `name`, as "; did you mean 'x'?".
    fn did_you_mean<'a>(name: &str, names: impl Iterator<Item = &'a str>) -> String {
        names
            .map(|candidate| (strsim::levenshtein(candidate, name), candidate))
            .min()
            .filter(|(distance, _)| *distance <= name.len().max(4) / 2 + 1)
            .map(|(_, candidate)| format!("; did you mean '{candidate}'?"))
            .unwrap_or_default()
    }

    pub(super) fn compile(
        sql: &str,
        output: &SchemaRef,
        candidates: &[OutputVariable],
        resolution: Resolution,
    ) -> Result<RowFilter, String> {
        let known: Vec<&str> = output
            .fields()
            .iter()
            .map(|field| field.name().as_str())
            .chain(candidates.iter().map(|variable| variable.name.as_str()))
            .collect();
        check_names(sql, &known)?;
        let wide = with_hidden(output, candidates, resolution);
        let context = SessionContext::new();
        let one_line =
            |err: datafusion::error::DataFusionError| err.strip_backtrace().replace('\n', " ");
        let expr = DFSchema::try_from(wide.as_ref().clone())
            .and_then(|schema| context.parse_sql_expr(sql, &schema))
            .map_err(one_line)?;
        let used: HashSet<String> = expr
            .column_refs()
            .into_iter()
            .map(|column| column.name.clone())
            .collect();
        let hidden: Vec<OutputVariable> = candidates
            .iter()
            .filter(|variable| used.contains(&variable.name))
            .cloned()
            .collect();
        let schema = with_hidden(output, &hidden, resolution);
        let physical = DFSchema::try_from(schema.as_ref().clone())
            .and_then(|df_schema| context.create_physical_expr(expr, &df_schema))
            .map_err(one_line)?;
        match physical.data_type(&schema).map_err(one_line)? {
            DataType::Boolean | DataType::Null => {}
            other => return Err(format!("is not a boolean expression (it gives {other})")),
        }
        Ok(RowFilter {
            text: sql.to_string(),
            hidden,
            schema,
            predicate: Arc::new(Predicate(physical)),
        })
    }

    /// Every identifier of `sql` that is not a keyword or a function name
    /// must be one of `known` (unquoted ones compared in lower case, as
    /// DataFusion does), so an unknown column is named with a 'did you
    /// mean' rather than in the planner's long message.
    fn check_names(sql: &str, known: &[&str]) -> Result<(), String> {
        let tokens = Tokenizer::new(&GenericDialect {}, sql)
            .tokenize()
            .map_err(|err| err.to_string())?;
        let mut meaningful = tokens
            .iter()
            .filter(|token| !matches!(token, Token::Whitespace(_)))
            .peekable();
        while let Some(token) = meaningful.next() {
            let Token::Word(word) = token else {
                continue;
            };
            let is_function = matches!(meaningful.peek(), Some(Token::LParen));
            let is_keyword = word.quote_style.is_none() && word.keyword != Keyword::NoKeyword;
            if is_function || is_keyword {
                continue;
            }
            let name = match word.quote_style {
                Some(_) => word.value.clone(),
                None => word.value.to_lowercase(),
            };
            if !known.contains(&name.as_str()) {
                return Err(format!(
                    "no column or ATL08 variable named '{name}'{}",
                    did_you_mean(&name, known.iter().copied())
                ));
            }
        }
        Ok(())
    }

    struct Predicate(Arc<dyn PhysicalExpr>);

    impl RowPredicate for Predicate {
        fn keep(&self, batch: &RecordBatch) -> Result<BooleanArray, String> {
            let flags = self
                .0
                .evaluate(batch)
                .and_then(|value| value.into_array(batch.num_rows()))
                .map_err(|err| err.strip_backtrace().replace('\n', " "))?;
            let flags = if flags.data_type() == &DataType::Null {
                BooleanArray::new_null(batch.num_rows())
            } else {
                flags
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .cloned()
                    .ok_or_else(|| format!("gave {} values, not booleans", flags.data_type()))?
            };
            if flags.len() != batch.num_rows() {
                return Err(format!(
                    "gave {} flags for {} rows",
                    flags.len(),
                    batch.num_rows()
                ));
            }
            Ok(flags)
        }
    }
}

#[cfg(not(feature = "query"))]
mod engine {
    use arrow::datatypes::SchemaRef;

    use crate::granule::columns::OutputVariable;
    use crate::granule::{Resolution, RowFilter};

    pub(super) fn compile(
        _sql: &str,
        _output: &SchemaRef,
        _candidates: &[OutputVariable],
        _resolution: Resolution,
    ) -> Result<RowFilter, String> {
        Err("needs a build with the `query` feature (DataFusion), which this one lacks".into())
    }
}
