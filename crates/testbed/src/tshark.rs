//! tshark, the independent reader the tests check capture files with.

use std::path::Path;
use std::process::Command;

use crate::{command_line, Error, Result};

/// `tshark -n -r FILE -T fields -E separator=/t -e FIELD…`: one line per packet, the fields
/// separated by tabs. Fails when tshark does, and when it finds the file cut short or
/// damaged: a file the sidecar wrote must be whole.
pub fn field_lines(file: &Path, fields: &[&str]) -> Result<Vec<String>> {
    let mut command = Command::new("tshark");
    command
        .args(["-n", "-r"])
        .arg(file)
        .args(["-T", "fields", "-E", "separator=/t"]);
    for field in fields {
        command.args(["-e", field]);
    }
    read(&mut command)
}

/// `tshark -n -r FILE -T fields -E occurrence=a -E aggregator=, -e FIELD…`: per packet, one
/// string per field, with every occurrence of the field (an ICMP error's two IP headers, a
/// DNS answer list) joined by commas. Fails as [`field_lines`] does.
pub fn all_occurrences(file: &Path, fields: &[&str]) -> Result<Vec<Vec<String>>> {
    let mut command = Command::new("tshark");
    command.args(["-n", "-r"]).arg(file).args([
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    rows(&mut command, fields)
}

/// `tshark -n -r FILE -Y FILTER -T fields -e FIELD…`: one row of field values per packet the
/// display filter matches. Fails as [`field_lines`] does.
pub fn filtered(file: &Path, filter: &str, fields: &[&str]) -> Result<Vec<Vec<String>>> {
    let mut command = Command::new("tshark");
    command
        .args(["-n", "-r"])
        .arg(file)
        .args(["-Y", filter, "-T", "fields", "-E", "separator=/t"]);
    rows(&mut command, fields)
}

/// Runs `command` (a tshark with tab-separated `-T fields` output) asking for `fields`: one
/// row of values per packet.
fn rows(command: &mut Command, fields: &[&str]) -> Result<Vec<Vec<String>>> {
    for field in fields {
        command.args(["-e", field]);
    }
    Ok(read(command)?
        .iter()
        .map(|line| line.split('\t').map(str::to_string).collect())
        .collect())
}

/// A number as tshark prints it: decimal, or hexadecimal with `0x`.
pub fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// How many packets tshark reads in `file` (which must be whole, as for [`field_lines`]).
pub fn count(file: &Path) -> Result<usize> {
    Ok(read(Command::new("tshark").args(["-n", "-r"]).arg(file))?.len())
}

fn read(command: &mut Command) -> Result<Vec<String>> {
    let line = command_line(command);
    let output = command
        .output()
        .map_err(|e| Error::io(format!("running `{line}`"), e))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success()
        || stderr.contains("cut short")
        || stderr.contains("appears to be damaged")
    {
        return Err(Error::Command {
            command: line,
            detail: format!("{}; stderr: {}", output.status, stderr.trim()),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}
