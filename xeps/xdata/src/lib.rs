//! # lithos-xdata
//!
//! XEP-0004 (Data Forms, `jabber:x:data`): a form is a list of fields, each named by `var`
//! and holding values. Queries (a message archive's search), configuration (rooms, nodes)
//! and commands carry them. [`Form`] reads one strictly enough to trust (`type` known,
//! every field named once, `FORM_TYPE` readable) and writes it back.
//!
//! ```
//! use lithos_core::{Element, Payload};
//! use lithos_xdata::{Form, FormType};
//! let x = Element::parse("<x xmlns='jabber:x:data' type='submit'>\
//!     <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>\
//!     <field var='with'><value>juliet@capulet.lit</value></field></x>")?;
//! let f = Form::from_element(x)?;
//! assert_eq!(f.type_, FormType::Submit);
//! assert_eq!(f.form_type(), Some("urn:xmpp:mam:2"));
//! assert_eq!(f.value("with"), Some("juliet@capulet.lit"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use lithos_core::{Element, PayloadError};

/// The namespace.
pub const NS: &str = "jabber:x:data";

// Code `F0 20`.
lithos_core::extension! { table_file: "xdata.props" }

/// A form's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, lithos_core::AttrValue)]
pub enum FormType {
    /// A form to fill in.
    Form,
    /// A filled-in form.
    Submit,
    /// A form declined.
    Cancel,
    /// Results.
    Result,
}

/// One field.
#[derive(Debug, Clone, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "field", ignore_unknown_children)]
pub struct Field {
    /// Its name.
    #[payload(attr)]
    pub var: Option<String>,
    /// Its kind (`text-single`, `jid-single`, `hidden`, `boolean`...).
    #[payload(attr = "type")]
    pub type_: Option<String>,
    /// A human-readable label.
    #[payload(attr)]
    pub label: Option<String>,
    /// Its values.
    #[payload(child)]
    pub values: Vec<Value>,
    /// The choices of a `list-single` or `list-multi` field.
    #[payload(child)]
    pub options: Vec<FieldOption>,
}

/// One `<option/>` of a list field: a label and the value it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "option")]
pub struct FieldOption {
    /// A human-readable label.
    #[payload(attr)]
    pub label: Option<String>,
    /// The value.
    #[payload(text_child = "value")]
    pub value: String,
}

/// One `<value/>` of a field.
#[derive(Debug, Clone, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "value")]
pub struct Value {
    /// The text.
    #[payload(text)]
    pub text: String,
}

impl Field {
    /// A field `var` of kind `type_` holding `values`.
    pub fn new(var: &str, type_: Option<&str>, values: Vec<String>) -> Field {
        Field {
            var: Some(var.to_string()),
            type_: type_.map(str::to_string),
            label: None,
            values: values.into_iter().map(|text| Value { text }).collect(),
            options: Vec::new(),
        }
    }

    /// The field with these choices (`(label, value)`), for a list field.
    pub fn with_options(mut self, options: &[(&str, &str)]) -> Field {
        self.options = options
            .iter()
            .map(|(label, value)| FieldOption {
                label: Some(label.to_string()),
                value: value.to_string(),
            })
            .collect();
        self
    }

    /// The first value.
    pub fn first(&self) -> Option<&str> {
        self.values.first().map(|v| v.text.as_str())
    }
}

/// A form.
#[derive(Debug, Clone, PartialEq, Eq, lithos_core::Payload)]
#[payload(ns = NS, name = "x", validate = Form::check, ignore_unknown_children)]
pub struct Form {
    /// Its type.
    #[payload(attr = "type")]
    pub type_: FormType,
    /// Its title.
    #[payload(text_child = "title")]
    pub title: Option<String>,
    /// Its fields.
    #[payload(child)]
    pub fields: Vec<Field>,
}

impl Form {
    /// An empty form of `type_` for `form_type` (its hidden `FORM_TYPE` field).
    pub fn new(type_: FormType, form_type: &str) -> Form {
        Form {
            type_,
            title: None,
            fields: vec![Field::new(
                "FORM_TYPE",
                Some("hidden"),
                vec![form_type.to_string()],
            )],
        }
    }

    fn check(&self) -> Result<(), PayloadError> {
        let mut seen = std::collections::HashSet::new();
        for f in &self.fields {
            if let Some(v) = &f.var
                && !seen.insert(v.as_str())
            {
                return Err(PayloadError::Invalid(format!(
                    "the form names the field {v} twice"
                )));
            }
            if self.type_ == FormType::Submit && f.var.is_none() {
                return Err(PayloadError::Invalid(
                    "every field of a submitted form has a var".into(),
                ));
            }
        }
        Ok(())
    }

    /// The field named `var`.
    pub fn field(&self, var: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.var.as_deref() == Some(var))
    }

    /// The first value of the field `var`.
    pub fn value(&self, var: &str) -> Option<&str> {
        self.field(var)?.first()
    }

    /// The `FORM_TYPE` value.
    pub fn form_type(&self) -> Option<&str> {
        self.value("FORM_TYPE")
    }

    /// Adds a field.
    pub fn with(mut self, field: Field) -> Form {
        self.fields.push(field);
        self
    }

    /// The form as an element.
    pub fn to_element(&self) -> Element {
        lithos_core::Payload::into_element(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::Payload;

    #[test]
    fn list_fields_carry_their_options() {
        let f = Field::new("color", Some("list-single"), vec!["red".into()])
            .with_options(&[("Red", "red"), ("Blue", "blue")]);
        let el = Payload::into_element(f.clone());
        let xml = el.to_xml();
        assert!(
            xml.contains("<option label=\"Blue\"><value>blue</value></option>"),
            "{xml}"
        );
        assert_eq!(Field::from_element(el).unwrap(), f);
    }

    #[test]
    fn strict_enough() {
        let el = |x: &str| Element::parse(x).unwrap();
        assert!(Form::from_element(el("<x xmlns='jabber:x:data' type='other'/>")).is_err());
        assert!(
            Form::from_element(el(
                "<x xmlns='jabber:x:data' type='submit'><field var='a'/><field var='a'/></x>"
            ))
            .is_err()
        );
        assert!(
            Form::from_element(el(
                "<x xmlns='jabber:x:data' type='submit'><field><value>1</value></field></x>"
            ))
            .is_err()
        );
        let f = Form::new(FormType::Form, "urn:example").with(Field::new(
            "with",
            Some("jid-single"),
            vec![],
        ));
        let back = Form::from_element(f.to_element()).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.form_type(), Some("urn:example"));
        assert_eq!(back.value("with"), None);
    }
}
