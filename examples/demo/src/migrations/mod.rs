//! The demo's migrations, one module per migration, named `mYYYYMMDD_description`.

mod m20250125_add_metadata_field;

use dynamigrate::Migration;

pub fn all() -> Vec<Box<dyn Migration>> {
    vec![Box::new(m20250125_add_metadata_field::AddMetadataField)]
}
