//! Integration tests: the real app over HTTP, on SQLite or (TEST_DATABASE=postgres) PostgreSQL.

mod helpers;

mod access;
mod admin;
mod cli;
mod corpus;
mod customers;
mod emulator;
mod entra_login;
mod faults;
mod group_holders;
mod groups;
mod health;
mod jit;
mod login;
mod mail;
mod migrations;
mod mobile_api;
mod notifications;
mod reconcile;
mod requests;
mod surface;
mod upgrade;
mod user_source;
