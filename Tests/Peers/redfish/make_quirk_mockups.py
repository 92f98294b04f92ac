#!/usr/bin/env python3
"""Writes the chassis of the energy mockup that reproduce what real Redfish services do (see
Tests/Peers/README.md): each is this project's own data, shaped after a quirk seen in a real
capture, never a copy of one. Run from anywhere; rewrites mockups/energy/Chassis/{KWhTower,Card,
Shelf,KwUnits,Phases,KWhOnly} and the collection's member list."""
import json, os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'mockups', 'energy', 'Chassis')

def write(path, doc):
    folder = os.path.join(ROOT, *path.split('/'))
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'index.json'), 'w') as f:
        json.dump(doc, f, indent=2)
        f.write('\n')

def oid(path):
    return {'@odata.id': '/redfish/v1/Chassis/' + path}

def chassis(cid, sensors=True, **extra):
    doc = {'@odata.type': '#Chassis.v1_25_0.Chassis', 'Id': cid, 'Name': cid + ' chassis',
           'Status': {'State': 'Enabled', 'Health': 'OK'}}
    if sensors:
        doc['Sensors'] = oid(cid + '/Sensors')
    doc.update(extra)
    doc['@odata.id'] = '/redfish/v1/Chassis/' + cid
    write(cid, doc)

def sensors(cid, items):
    write(cid + '/Sensors', {'@odata.type': '#SensorCollection.SensorCollection', 'Name': 'Sensors',
                             'Members@odata.count': len(items), 'Members': [oid(f'{cid}/Sensors/{s["Id"]}') for s in items]})
    for s in items:
        doc = {'@odata.type': '#Sensor.v1_9_0.Sensor', 'Status': {'State': 'Enabled', 'Health': 'OK'}}
        doc.update(s)
        doc['@odata.id'] = f'/redfish/v1/Chassis/{cid}/Sensors/{s["Id"]}'
        write(f'{cid}/Sensors/{s["Id"]}', doc)

def supplies(cid, bays):
    write(cid + '/PowerSubsystem', {'@odata.type': '#PowerSubsystem.v1_1_0.PowerSubsystem', 'Id': 'PowerSubsystem',
                                    'PowerSupplies': oid(cid + '/PowerSubsystem/PowerSupplies'),
                                    '@odata.id': f'/redfish/v1/Chassis/{cid}/PowerSubsystem'})
    write(cid + '/PowerSubsystem/PowerSupplies', {
        '@odata.type': '#PowerSupplyCollection.PowerSupplyCollection', 'Members@odata.count': len(bays),
        'Members': [oid(f'{cid}/PowerSubsystem/PowerSupplies/{b}') for b, _ in bays]})
    for bay, state in bays:
        write(f'{cid}/PowerSubsystem/PowerSupplies/{bay}', {
            '@odata.type': '#PowerSupply.v1_5_0.PowerSupply', 'Id': bay, 'Status': {'State': state},
            '@odata.id': f'/redfish/v1/Chassis/{cid}/PowerSubsystem/PowerSupplies/{bay}'})

def energy(sid, kind, units, reading, context='Chassis', **extra):
    return {'Id': sid, 'Name': sid, 'ReadingType': kind, 'ReadingUnits': units, 'Reading': reading, 'PhysicalContext': context, **extra}

def power(sid, reading, context='Chassis', **extra):
    return {'Id': sid, 'Name': sid, 'ReadingType': 'Power', 'ReadingUnits': 'W', 'Reading': reading, 'PhysicalContext': context, **extra}

# A whole-kWh counter beside a power reading (DMTF public-tower, -smartnic, -liquid-cooled), and a
# card chassis listed only in Links.Contains (public-smartnic's Card2).
chassis('KWhTower', Links={'Contains': [oid('Card')]})
sensors('KWhTower', [energy('TotalEnergy', 'EnergykWh', 'kW.h', 325675), power('TotalPower', 374, ElectricalContext='Total'),
                     energy('PS1Energy', 'EnergykWh', 'kW.h', 7855, 'PowerSupply')])
chassis('Card', sensors=False, EnvironmentMetrics=oid('Card/EnvironmentMetrics'), Links={'ContainedBy': oid('KWhTower')})
write('Card/EnvironmentMetrics', {'@odata.type': '#EnvironmentMetrics.v1_3_0.EnvironmentMetrics', 'PowerWatts': {'Reading': 75.5},
                                  '@odata.id': '/redfish/v1/Chassis/Card/EnvironmentMetrics'})
# A power shelf with Sensors only (the Delta capture): per-supply joule counters in and out, a
# per-supply kWh total whose unit is written "kWh", a small hot-swap power sensor listed before
# the shelf's total input power, supplies in the non-standard state "Standby".
chassis('Shelf', PowerSubsystem=oid('Shelf/PowerSubsystem'))
sensors('Shelf', [power('hotswap_input_power', 3), power('ps1_input_power', 341, 'PowerSupply'),
                  energy('ps1_energy_in', 'EnergyJoules', 'J', 107382, 'PowerSupply'),
                  energy('ps1_energy_out', 'EnergyJoules', 'J', 329564, 'PowerSupply'),
                  energy('ps1_total_energy_in', 'EnergykWh', 'kWh', 46.15, 'PowerSupply'),
                  energy('ps2_energy_in', 'EnergyJoules', 'J', 241595, 'PowerSupply'),
                  energy('ps2_energy_out', 'EnergyJoules', 'J', 41912, 'PowerSupply'),
                  energy('ps2_total_energy_in', 'EnergykWh', 'kWh', 61.31, 'PowerSupply'),
                  power('total_power_in', 1749), power('total_power_out', 1674)])
supplies('Shelf', [('1', 'Standby'), ('2', 'Enabled'), ('3', 'Absent')])
# An energy sensor whose ReadingUnits contradicts its ReadingType (public-pdu's transfer switch).
chassis('KwUnits')
sensors('KwUnits', [energy('EnergyA1', 'EnergykWh', 'kW', 7855), power('ACMainPower', 2734.8, ElectricalContext='Total')])
# No Sensors link although the collection is served (public-power-shelf), a phase sensor listed
# before the total, and a chassis energy sensor that counts the DC output.
chassis('Phases', sensors=False)
sensors('Phases', [power('PowerA', 192.4, ElectricalContext='Line1ToNeutral'),
                   power('PowerMains1', 427.3, ElectricalContext='Total'),
                   energy('EnergyDC', 'EnergykWh', 'kW.h', 7855, Name='Energy for DC output', ElectricalContext='Total')])

# A whole-kWh counter and nothing else: no power to integrate when it does not move.
chassis('KWhOnly')
sensors('KWhOnly', [energy('TotalEnergy', 'EnergykWh', 'kW.h', 325675)])

collection = os.path.join(ROOT, 'index.json')
with open(collection) as f:
    doc = json.load(f)
members = [m['@odata.id'] for m in doc['Members']]
for cid in ['KWhTower', 'Shelf', 'KwUnits', 'Phases', 'KWhOnly']:  # Card only through KWhTower's Links.Contains
    if '/redfish/v1/Chassis/' + cid not in members:
        members.append('/redfish/v1/Chassis/' + cid)
doc['Members'] = [{'@odata.id': m} for m in members]
doc['Members@odata.count'] = len(members)
with open(collection, 'w') as f:
    json.dump(doc, f, indent=2)
    f.write('\n')
